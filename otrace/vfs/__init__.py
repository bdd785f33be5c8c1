"""The ``/osh`` virtual filesystem: paths, and objects presented as directories.

* :mod:`.paths` -- parsing and expanding path text (``..``, ``~~``, ``~~g``, ``~~w``, globs);
* :mod:`.nodes` -- how a module, class, object, mapping, sequence or real directory lists
  its entries and looks one up;
* :mod:`.tree` -- the mount table under ``/osh`` and resolution of a path to objects.
"""

from otrace.vfs.nodes import Dir, FsPath, as_dir
from otrace.vfs.tree import Resolved, Tree

__all__ = ["Dir", "FsPath", "Resolved", "Tree", "as_dir"]
