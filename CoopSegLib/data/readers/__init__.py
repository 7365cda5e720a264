"""Dataset readers: each returns a list of ``Case`` objects with canonical label codes."""

from CoopSegLib.data.readers.acdc import list_acdc_subjects, read_acdc, read_acdc_groups, read_acdc_subject
from CoopSegLib.data.readers.mnms import read_mnms
from CoopSegLib.data.readers.packed import list_packed_subjects, read_packed
from CoopSegLib.data.readers.pairs import read_pairs_csv, read_nnunet

__all__ = ["list_acdc_subjects", "read_acdc", "read_acdc_groups", "read_acdc_subject", "read_mnms",
           "list_packed_subjects", "read_packed", "read_pairs_csv", "read_nnunet"]
