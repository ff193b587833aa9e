"""The lake as the mirror and the jobs share it: its columns (:mod:`~meterlake.lake.schema`), its directory and file
names (:mod:`~meterlake.lake.layout`), its file I/O (:mod:`~meterlake.lake.files`) and the jobs' output catalogue
(:mod:`~meterlake.lake.outputs`). It sits in the core, below both: streaming writes the lake, jobs read and write it,
and neither imports the other.
"""
