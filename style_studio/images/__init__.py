"""A style's images: sources (files, folders, bounded zips), checks and normalising,
metadata read from the files (creator, rights, DataMining), hashes and thumbnails, review
badges and filters, and the style signature (the colour-and-texture measure of an image
set that samples and the Playground are scored with).

`records.py` holds what crosses the boundary. May import `base`, `models`,
`captions.records` (an import brings its sidecar captions in) and `credentials.signals`
(a C2PA training-mining refusal in an upload prefills consent like IPTC DataMining).
"""
