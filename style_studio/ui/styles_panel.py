"""The style selector and the style settings: create, edit, delete (with confirmation)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from style_studio.studio import FAMILY_LABELS, Studio

from .common import guard

FAMILY_CHOICES = [(label, key) for key, label in FAMILY_LABELS.items()]
STYLE_PARAM = "style"
# The page's style lives in its own address (?style=<id>): a reload keeps it, and a second
# tab, with its own address, is never switched by this one. replaceState adds no history.
KEEP_STYLE_IN_URL = f"""(styleId) => {{
  const url = new URL(window.location.href);
  if (styleId) {{ url.searchParams.set("{STYLE_PARAM}", styleId); }}
  else {{ url.searchParams.delete("{STYLE_PARAM}"); }}
  if (url.href !== window.location.href) {{
    window.history.replaceState(window.history.state, "", url);
  }}
  return [];
}}"""
DEMO_OFFER = ("**New here?** Open the demo style: artworks generated in code (the project's "
              "own CC0 work) with approved captions and cleared consent, ready to train in a "
              "few minutes on the built-in toy model — no GPU or network needed.")


@dataclass
class StylePanel:
    selector: gr.Dropdown
    summary: gr.Markdown


def style_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(s.name, s.id) for s in studio.styles.list()]


def describe(studio: Studio, style_id: str | None) -> str:
    if not style_id:
        return ("No style yet. Open the demo style, or create your own below: a name, a "
                "trigger word and a base-model family.")
    style = studio.styles.get(style_id)
    trigger = f"trigger **{style.trigger}**" if style.trigger else "no trigger word"
    ref = studio.base_model_for(style)
    source = next((s for s in studio.base_models(style.family) if s.ref == ref), None)
    base = source.label if source else ref
    return f"**{style.name}** · {style.family_label} · {trigger}  \nBase model: {base}"


def build(studio: Studio) -> StylePanel:
    """Selector row plus a collapsible settings panel; returns the shared selector."""
    with gr.Row(equal_height=True):
        selector = gr.Dropdown(label="Style", choices=style_choices(studio), value=None,
                               scale=3, elem_id="style-selector", interactive=True)
        summary = gr.Markdown(elem_id="style-summary")
    with gr.Row(visible=not studio.styles.list(), elem_id="demo-offer",
                equal_height=True) as demo_offer:
        gr.Markdown(DEMO_OFFER)
        demo_btn = gr.Button("Open the demo style", variant="primary", scale=0,
                             min_width=220, elem_id="open-demo-style")
    with gr.Accordion("New style", open=False, elem_id="new-style") as new_box:
        with gr.Row():
            new_name = gr.Textbox(label="Name", placeholder="Ink washes", elem_id="new-style-name")
            new_trigger = gr.Textbox(label="Trigger word", placeholder="inkwash",
                                     info="One rare word that will call up the style.",
                                     elem_id="new-style-trigger")
            new_family = gr.Dropdown(label="Base model family", choices=FAMILY_CHOICES,
                                     value="sd15")
        new_notes = gr.Textbox(label="Notes", lines=2)
        create_btn = gr.Button("Create style", variant="primary", elem_id="create-style")
    with gr.Accordion("Style settings", open=False) as settings_box:
        with gr.Row():
            edit_name = gr.Textbox(label="Name")
            edit_trigger = gr.Textbox(label="Trigger word")
            edit_family = gr.Dropdown(label="Base model family", choices=FAMILY_CHOICES)
        with gr.Row():
            edit_base = gr.Dropdown(label="Base model", scale=2, elem_id="style-base-model",
                                    info="What the LoRA is trained on and generates with.")
            base_detail = gr.Markdown(elem_id="base-model-detail")
        edit_notes = gr.Textbox(label="Notes", lines=2)
        with gr.Row():
            save_btn = gr.Button("Save changes")
            delete_btn = gr.Button("Delete this style…", variant="stop")
        with gr.Row(visible=False) as confirm_row:
            confirm_text = gr.Markdown()
            confirm_btn = gr.Button("Yes, delete it and all its files", variant="stop")
            keep_btn = gr.Button("Keep it")

    edit_fields = [edit_name, edit_trigger, edit_family, edit_notes, edit_base]

    def base_choices(family: str, chosen: str | None):
        choices = [(s.label + ("" if s.available else " — not on this machine"), s.ref)
                   for s in studio.base_models(family)]
        return gr.update(choices=choices, value=chosen), base_text(family, chosen)

    def base_text(family: str, ref: str | None) -> str:
        source = next((s for s in studio.base_models(family) if s.ref == ref), None)
        if source is None:
            return ""
        mark = "**Available**" if source.available else "**Not on this machine**"
        return f"{mark} — {source.detail}"

    def fill(style_id: str | None):
        if not style_id:
            return describe(studio, None), "", "", "sd15", "", gr.update(choices=[]), ""
        style = studio.styles.get(style_id)
        base, detail = base_choices(style.family, studio.base_model_for(style))
        return (describe(studio, style_id), style.name, style.trigger, style.family,
                style.notes, base, detail)

    @guard
    def remember(style_id: str | None) -> None:
        if style_id:
            studio.styles.select(style_id)

    @guard
    def create(name: str, trigger: str, family: str, notes: str):
        style = studio.styles.create(name, trigger=trigger, family=family, notes=notes,
                                     base_model=studio.suggested_base_model(family))
        gr.Info(f"Created the style '{style.name}'.")
        return (gr.update(choices=style_choices(studio), value=style.id), "", "",
                gr.update(open=False))

    @guard
    def save(style_id: str | None, name: str, trigger: str, family: str, notes: str,
             base_model: str | None):
        if not style_id:
            raise gr.Error("Choose a style first.")
        before = studio.styles.get(style_id)
        if family != before.family:  # a base model of the other family cannot be kept
            base_model = studio.suggested_base_model(family)
        style = studio.styles.update(style_id, name=name, trigger=trigger, family=family,
                                     notes=notes, base_model=base_model)
        gr.Info("Saved.")
        return gr.update(choices=style_choices(studio), value=style.id), describe(studio, style.id)

    def ask_delete(style_id: str | None):
        if not style_id:
            raise gr.Error("Choose a style first.")
        style = studio.styles.get(style_id)
        text = (f"Delete **{style.name}**? Its images, captions, consent records, runs and "
                "outputs are removed from disk. This cannot be undone.")
        return gr.update(visible=True), text

    @guard
    def delete(style_id: str | None):
        style = studio.styles.delete(style_id or "")
        gr.Info(f"Deleted the style '{style.name}'.")
        current = studio.styles.current()
        return (gr.update(choices=style_choices(studio), value=current.id if current else None),
                gr.update(visible=False))

    @guard
    def open_demo():
        style = studio.demo.open()
        gr.Info(f"Opened '{style.name}': its images, approved captions and cleared consent "
                "are ready. Train it in the Training tab.")
        return gr.update(choices=style_choices(studio), value=style.id), gr.update(visible=False)

    selector.change(None, selector, None, js=KEEP_STYLE_IN_URL)
    # Only the artist's own pick becomes the default for new pages; a reload is no choice.
    selector.input(remember, selector, None)
    selector.change(fill, selector, [summary, *edit_fields, base_detail])
    selector.change(lambda: gr.update(visible=not studio.styles.list()), None, demo_offer)
    demo_btn.click(open_demo, None, [selector, demo_offer])
    edit_base.change(base_text, [edit_family, edit_base], base_detail)
    create_btn.click(create, [new_name, new_trigger, new_family, new_notes],
                     [selector, new_name, new_trigger, new_box])
    save_btn.click(save, [selector, *edit_fields], [selector, summary]).then(
        fill, selector, [summary, *edit_fields, base_detail])
    delete_btn.click(guard(ask_delete), selector, [confirm_row, confirm_text])
    keep_btn.click(lambda: gr.update(visible=False), None, confirm_row)
    confirm_btn.click(delete, selector, [selector, confirm_row])
    del settings_box
    return StylePanel(selector=selector, summary=summary)
