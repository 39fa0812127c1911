"""The run page's components: a run's summary, its settings, its files, its images.

Built into the Training tab in two places (the summary under the run picker, the
details under the charts and samples) and refreshed by the tab's view whenever the run
shown, its status or its flags change: not on every training step, since it copies
thumbnails and files into the upload cache.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from style_studio.studio import Run, StudioError

from . import run_views
from .common import UsesStudio
from .studios import StudioSource


class PublishBox:
    """"Publish to the Hugging Face Hub": a repo, what will be public, then Publish."""

    def __init__(self) -> None:
        with gr.Accordion("Publish to the Hugging Face Hub", open=False,
                          elem_id="run-publish-box"):
            gr.Markdown("Uploads this run's LoRA files, their Content Credentials, the model "
                        "card and its samples, with your Hugging Face login (`hf auth "
                        "login` or HF_TOKEN on this machine). Never the training images.")
            with gr.Row():
                self.repo = gr.Textbox(label="Repository (user/name)", scale=3,
                                       placeholder="your-name/my-style-lora",
                                       elem_id="run-publish-repo")
                self.private = gr.Checkbox(label="Private repo", value=False,
                                           elem_id="run-publish-private")
            self.preview_btn = gr.Button("Show what will be public",
                                         elem_id="run-publish-preview")
            self.preview = gr.Markdown(elem_id="run-publish-plan")
            self.publish_btn = gr.Button("Publish", variant="primary", interactive=False,
                                         elem_id="run-publish-go")
            self.planned = gr.State(None)  # (run id, repo, private) the artist has seen


class RunPage(UsesStudio):
    """The components; `values` fills them for a run, in the order of `outputs`."""

    settings: gr.Markdown
    files_note: gr.Markdown
    downloads: list[gr.DownloadButton]
    images_heading: gr.Markdown
    gallery: gr.Gallery
    images: gr.Dataframe
    publish: PublishBox | None

    def __init__(self, source: StudioSource) -> None:
        """The summary, placed where the page is made; `layout_details` places the rest."""
        self.source = source
        self.summary = gr.Markdown(elem_id="run-summary")

    def layout_details(self, show_publish: bool = True) -> None:
        """Settings, downloads, the Hub box (not on a public demo) and images, placed where
        this is called."""
        with gr.Accordion("Settings of this run", open=False, elem_id="run-settings-box"):
            self.settings = gr.Markdown(elem_id="run-settings")
        gr.Markdown("#### Files of this run", elem_id="run-files-title")
        self.files_note = gr.Markdown(elem_id="run-files-note")
        with gr.Row(elem_id="run-downloads"):
            self.downloads = [gr.DownloadButton(
                label, elem_id=elem_id, visible=False, size="md",
                variant="primary" if key == "zip" else "secondary")
                for key, label, elem_id in run_views.DOWNLOADS]
        self.publish = PublishBox() if show_publish else None
        self.images_heading = gr.Markdown("#### Images this LoRA was trained on",
                                          elem_id="run-images-title")
        self.gallery = gr.Gallery(label="Thumbnails (file · creator · licence)", columns=8,
                                  height="auto", object_fit="cover", allow_preview=True,
                                  elem_id="run-thumbs")
        self.images = gr.Dataframe(headers=run_views.IMAGE_HEADERS, interactive=False,
                                   wrap=True, elem_id="run-images",
                                   column_widths=run_views.IMAGE_WIDTHS,
                                   label="Every image behind this run")

    @property
    def outputs(self) -> list[Any]:
        return [self.summary, self.settings, self.files_note, *self.downloads,
                self.images_heading, self.gallery, self.images]

    def unchanged(self) -> tuple[Any, ...]:
        return (gr.update(),) * len(self.outputs)

    def values(self, run: Run | None) -> tuple[Any, ...]:
        if run is None:
            hidden = [gr.update(value=None, visible=False) for _ in self.downloads]
            return (run_views.summary_markdown(None, []), "", "", *hidden,
                    run_views.images_heading([]), [], [])
        studio = self.studio
        images = studio.training.run_images(run.id)
        files = studio.training.run_files(run.id)
        # The zip waits for the end: while a run trains, its files still change.
        bundle = None if run.active else studio.training.run_bundle(run.id)
        pack = None if run.active or bundle is None else self._pack(run.id)
        downloads = [gr.update(**values)
                     for values in run_views.download_values(files, bundle, pack)]
        return (run_views.summary_markdown(run, images), run_views.settings_markdown(run),
                run_views.files_note(run, files), *downloads,
                run_views.images_heading(images),
                run_views.gallery_items(studio, run, images), run_views.image_rows(images))

    def _pack(self, run_id: str) -> Any:
        """The client's provenance pack; a run it cannot be made for simply offers none."""
        try:
            return self.studio.verification.provenance_pack(run_id)
        except StudioError:
            return None

