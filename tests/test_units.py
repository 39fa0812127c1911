"""Sizes read as people say them, never "0.0 MB" for a small file."""

from __future__ import annotations

import pytest

from style_studio.base.units import human_size


@pytest.mark.parametrize("size, text", [
    (0, "0 bytes"), (1, "1 byte"), (812, "812 bytes"), (1023, "1023 bytes"),
    (1024, "1.0 KB"), (40_000, "39 KB"), (9.5 * 1024, "9.5 KB"),
    (3.2 * 1024 ** 2, "3.2 MB"), (250 * 1024 ** 2, "250 MB"),
    (1.4 * 1024 ** 3, "1.4 GB"), (5 * 1024 ** 5, "5120 TB"), (-3, "0 bytes"),
])
def test_human_sizes(size, text):
    assert human_size(size) == text
