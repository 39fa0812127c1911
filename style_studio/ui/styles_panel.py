"""The style selector and the style settings: create, edit, delete (with confirmation)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from style_studio.studio import TRAINABLE_FAMILIES, Studio, TrainingMining

from .common import UsesStudio, guard, on_style_change
from .studios import StudioSource

# Only the families the trainer trains: a style of any other could never be trained.
FAMILY_CHOICES = [(label, key) for key, label in TRAINABLE_FAMILIES.items()]
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
}}"""
# The style's training-and-mining choice in plain words (CAWG values underneath).
MINING_CHOICES = [("No: not for training AI (default)", "no"),
                  ("Only with my permission", "ask"),
                  ("Yes: AI training is allowed", "yes")]
MINING_INFO = ("Written, signed, into every picture and LoRA this style makes, so tools and "
               "people can see what you allow.")


def mining_choice(mining: TrainingMining) -> tuple[str, str]:
    """A style's stored choice as the radio's value and the constraint text."""
    if mining.ai_training == "allowed":
        return "yes", ""
    if mining.ai_training == "constrained":
        return "ask", mining.constraint_info
    return "no", ""


def mining_from_choice(choice: str | None, how_to_ask: str) -> TrainingMining:
    """The radio's value (and how to ask, for "only with my permission") as CAWG values."""
    if choice == "yes":
        return TrainingMining(ai_training="allowed", ai_generative_training="allowed")
    if choice == "ask":
        return TrainingMining(ai_training="constrained", ai_generative_training="constrained",
                              constraint_info=how_to_ask)
    return TrainingMining()


DEMO_OFFER = ("**New here?** Open the demo style: artworks generated in code (the project's "
              "own CC0 work) with approved captions and cleared consent, ready to train in a "
              "few minutes on the built-in toy model — no GPU or network needed.")


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
    terms = studio.base_model_terms(ref, style.family, short=True)
    base += f" ({terms})" if terms else ""
    return f"**{style.name}** · {style.family_label} · {trigger}  \nBase model: {base}"


def family_models(studio: Studio, family: str | None) -> str:
    """The real models of a family with their licence, commercial use and training memory,
    shown before a style is created: a non-commercial licence binds the LoRA too."""
    if not family:
        return ""
    lines = []
    for source in studio.base_models(family):
        terms = studio.base_model_terms(source.ref, family)
        if terms:
            where = "on this machine" if source.available else "not on this machine"
            lines.append(f"- **{source.label}** ({where}) — {terms}")
    if not lines:
        return ""
    return "Real models of this family:\n" + "\n".join(lines)


class StylesPanel(UsesStudio):
    """The style selector every tab reads (`selector`) and the panel that edits styles."""

    def __init__(self, source: StudioSource):
        self.source = source
        self._layout()
        self._wire()

    # -- layout --------------------------------------------------------------------
    def _layout(self) -> None:
        with gr.Row(equal_height=True):
            self.selector = gr.Dropdown(label="Style", choices=style_choices(self.studio),
                                        value=None, scale=3, elem_id="style-selector",
                                        interactive=True)
            self.summary = gr.Markdown(elem_id="style-summary")
        with gr.Row(visible=not self.studio.styles.list(), elem_id="demo-offer",
                    equal_height=True) as self.demo_offer:
            gr.Markdown(DEMO_OFFER)
            self.demo_btn = gr.Button("Open the demo style", variant="primary", scale=0,
                                      min_width=220, elem_id="open-demo-style")
        with gr.Accordion("New style", open=False, elem_id="new-style") as self.new_box:
            with gr.Row():
                self.new_name = gr.Textbox(label="Name", placeholder="Ink washes",
                                           elem_id="new-style-name")
                self.new_trigger = gr.Textbox(label="Trigger word", placeholder="inkwash",
                                              info="One rare word that will call up the style.",
                                              elem_id="new-style-trigger")
                self.new_family = gr.Dropdown(label="Base model family", choices=FAMILY_CHOICES,
                                              value="sd15", elem_id="new-style-family")
            self.new_family_models = gr.Markdown(family_models(self.studio, "sd15"),
                                                 elem_id="new-style-family-models")
            self.new_notes = gr.Textbox(label="Notes", lines=2)
            self.create_btn = gr.Button("Create style", variant="primary",
                                        elem_id="create-style")
        with gr.Accordion("Style settings", open=False):
            self._settings()

    def _settings(self) -> None:
        with gr.Row():
            self.edit_name = gr.Textbox(label="Name")
            self.edit_trigger = gr.Textbox(label="Trigger word")
            self.edit_family = gr.Dropdown(label="Base model family", choices=FAMILY_CHOICES)
        with gr.Row():
            self.edit_base = gr.Dropdown(label="Base model", scale=2,
                                         elem_id="style-base-model",
                                         info="What the LoRA is trained on and generates "
                                              "with.")
            self.base_detail = gr.Markdown(elem_id="base-model-detail")
        self.edit_notes = gr.Textbox(label="Notes", lines=2)
        with gr.Row():
            self.edit_mining = gr.Radio(
                label="May others use what this style makes to train AI?",
                choices=MINING_CHOICES, value="no", info=MINING_INFO,
                elem_id="style-training-mining")
            self.edit_ask = gr.Textbox(label="How to ask you (for 'only with my permission')",
                                       placeholder="mail@example.org",
                                       elem_id="style-training-ask")
            self.edit_author = gr.Textbox(
                label="Your name on signed files (all styles)", elem_id="signing-author",
                info="The certificate that signs your pictures and LoRAs names you.")
        with gr.Row():
            self.save_btn = gr.Button("Save changes")
            self.delete_btn = gr.Button("Delete this style…", variant="stop")
        with gr.Row(visible=False) as self.confirm_row:
            self.confirm_text = gr.Markdown()
            self.confirm_btn = gr.Button("Yes, delete it and all its files", variant="stop")
            self.keep_btn = gr.Button("Keep it")

    # -- views ----------------------------------------------------------------------
    @property
    def edit_fields(self) -> list[Any]:
        return [self.edit_name, self.edit_trigger, self.edit_family, self.edit_notes,
                self.edit_base, self.edit_mining, self.edit_ask, self.edit_author]

    def base_choices(self, family: str, chosen: str | None) -> tuple[Any, str]:
        choices = [(self.base_label(s.label, s.ref, family, s.available), s.ref)
                   for s in self.studio.base_models(family)]
        return gr.update(choices=choices, value=chosen), self.base_text(family, chosen)

    def base_label(self, label: str, ref: str, family: str, available: bool) -> str:
        """"FLUX.1 [dev] (…) · non-commercial · ~24 GB to train — not on this machine"."""
        terms = self.studio.base_model_terms(ref, family, short=True)
        return (label + (f" · {terms}" if terms else "")
                + ("" if available else " — not on this machine"))

    def base_text(self, family: str, ref: str | None) -> str:
        source = next((s for s in self.studio.base_models(family) if s.ref == ref), None)
        if source is None:
            return ""
        mark = "**Available**" if source.available else "**Not on this machine**"
        terms = self.studio.base_model_terms(ref, family)
        return f"{mark} — {source.detail}" + (f"  \n{terms}" if terms else "")

    def fill(self, style_id: str | None) -> tuple[Any, ...]:
        author = self.studio.credentials.artist_name()
        if not style_id:
            return (describe(self.studio, None), "", "", "sd15", "", gr.update(choices=[]),
                    "no", "", author, "")
        style = self.studio.styles.get(style_id)
        base, detail = self.base_choices(style.family, self.studio.base_model_for(style))
        choice, ask = mining_choice(self.studio.credentials.training_mining(style_id))
        return (describe(self.studio, style_id), style.name, style.trigger, style.family,
                style.notes, base, choice, ask, author, detail)

    def picker_update(self, style_id: str | None = None) -> Any:
        """The selector with every style, showing `style_id`."""
        return gr.update(choices=style_choices(self.studio), value=style_id)

    # -- handlers ---------------------------------------------------------------------
    def remember(self, style_id: str | None) -> None:
        if style_id:
            self.studio.styles.select(style_id)

    def create(self, name: str, trigger: str, family: str, notes: str) -> tuple[Any, ...]:
        studio = self.studio
        style = studio.styles.create(name, trigger=trigger, family=family, notes=notes,
                                     base_model=studio.suggested_base_model(family))
        gr.Info(f"Created the style '{style.name}'.")
        return self.picker_update(style.id), "", "", gr.update(open=False)

    def save(self, style_id: str | None, name: str, trigger: str, family: str, notes: str,
             base_model: str | None, mining: str | None, how_to_ask: str,
             author: str) -> tuple[Any, str]:
        if not style_id:
            raise gr.Error("Choose a style first.")
        before = self.studio.styles.get(style_id)
        if family != before.family:  # a base model of the other family cannot be kept
            base_model = self.studio.suggested_base_model(family)
        if (author or "").strip() and author.strip() != self.studio.credentials.artist_name():
            self.studio.credentials.set_artist_name(author)
        self.studio.credentials.set_training_mining(style_id,
                                                    mining_from_choice(mining, how_to_ask))
        style = self.studio.styles.update(style_id, name=name, trigger=trigger, family=family,
                                          notes=notes, base_model=base_model)
        gr.Info("Saved.")
        return self.picker_update(style.id), describe(self.studio, style.id)

    def ask_delete(self, style_id: str | None) -> tuple[Any, str]:
        if not style_id:
            raise gr.Error("Choose a style first.")
        style = self.studio.styles.get(style_id)
        text = (f"Delete **{style.name}**? Its images, captions, consent records, runs and "
                "outputs are removed from disk. This cannot be undone.")
        return gr.update(visible=True), text

    def delete(self, style_id: str | None) -> tuple[Any, Any]:
        style = self.studio.styles.delete(style_id or "")
        gr.Info(f"Deleted the style '{style.name}'.")
        current = self.studio.styles.current()
        return self.picker_update(current.id if current else None), gr.update(visible=False)

    def open_demo(self) -> tuple[Any, Any]:
        style = self.studio.demo.open()
        gr.Info(f"Opened '{style.name}': its images, approved captions and cleared consent "
                "are ready. Train it in the Training tab.")
        return self.picker_update(style.id), gr.update(visible=False)

    # -- wiring ------------------------------------------------------------------------
    def _wire(self) -> None:
        selector, filled = self.selector, [self.summary, *self.edit_fields, self.base_detail]
        on_style_change(selector, None, selector, None, js=KEEP_STYLE_IN_URL)
        # Only the artist's own pick becomes the default for new pages; a reload is no choice.
        selector.input(guard(self.remember), selector, None)
        on_style_change(selector, self.fill, selector, filled)
        on_style_change(selector, lambda: gr.update(visible=not self.studio.styles.list()),
                        None, self.demo_offer)
        self.demo_btn.click(guard(self.open_demo), None, [selector, self.demo_offer])
        self.edit_base.change(self.base_text, [self.edit_family, self.edit_base],
                              self.base_detail)
        self.new_family.change(lambda f: family_models(self.studio, f), self.new_family,
                               self.new_family_models)
        self.create_btn.click(guard(self.create),
                              [self.new_name, self.new_trigger, self.new_family,
                               self.new_notes],
                              [selector, self.new_name, self.new_trigger, self.new_box])
        self.save_btn.click(guard(self.save), [selector, *self.edit_fields],
                            [selector, self.summary]).then(self.fill, selector, filled)
        self.delete_btn.click(guard(self.ask_delete), selector,
                              [self.confirm_row, self.confirm_text])
        self.keep_btn.click(lambda: gr.update(visible=False), None, self.confirm_row)
        self.confirm_btn.click(guard(self.delete), selector, [selector, self.confirm_row])
