"""Writing files all-or-nothing: into a temporary file in the target's folder, then renamed over the target.

A reader never sees a half-written file, and an error (or Ctrl-C) part-way leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Union


def write_atomically(path: Union[str, "os.PathLike[str]"], write: Callable[[str], None]) -> Path:
    """Call ``write(temporary_path)``, then rename the temporary file to ``path``.

    The temporary name keeps the target's extensions (e.g. .nii.gz), so writers that choose a format by extension
    behave as for the target, and the file gets the permissions a plain ``open`` would give it.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix="".join(path.suffixes), dir=str(path.parent))
    os.close(handle)
    try:
        write(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp creates 0600
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path
