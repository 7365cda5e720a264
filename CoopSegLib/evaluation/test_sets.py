"""The paper's test sets (Table 1), built from an ACDC-layout folder on the fly.

    clean      ED and ES frames of every subject (the paper's intra-domain "ACDC" column)
    site       ED and ES frames from another site's folder (the paper's "M&Ms" column): an M&Ms folder
               (<code>_sa.nii.gz + information CSV), an nnU-Net folder (imagesTr/, labelsTr/) or another
               ACDC-layout folder
    bias, ghosting, motion, spike
               ES frames, each corrupted ``copies`` times (default 3) with TorchIO at the paper's parameters
               (ACDC-C: RandBias, RandGhosting, RandMotion, RandSpike). Copy seeds are those of
               ``coopseg corrupt`` with the same --seed, so on-the-fly sets equal the files that command writes.
               spike has exactly one spike per copy; spike_paper is the authors' setting (0 or 1 spikes).

Cases are produced one at a time, so a whole evaluation never holds more than one corrupted volume in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Union

from CoopSegLib.data.case import Case
from CoopSegLib.data.corruption import CORRUPTIONS, corrupt_volume, corruption_seed
from CoopSegLib.data.geometry import Volume
from CoopSegLib.data.nifti import strip_nifti_suffix
from CoopSegLib.errors import CoopSegError

PathLike = Union[str, Path]

# Set name -> column title, in the paper's Table 1 order.
TEST_SETS = {
    "clean": "clean",
    "site": "other site",
    "bias": "RandBias",
    "ghosting": "RandGhosting",
    "motion": "RandMotion",
    "spike": "RandSpike",
    "spike_paper": "RandSpike 0-1",  # the authors' num_spikes=1, which TorchIO reads as 0 or 1 spikes
}
DEFAULT_SETS = ("clean", "bias", "ghosting", "motion", "spike")  # plus "site" when a site folder is given


@dataclass
class EvaluationCase:
    set: str
    key: str  # subject_frame, plus _<kind>_<copy> for corrupted copies
    image: Volume
    label: Volume
    subject: str = ""  # the person: bootstrap intervals resample these
    frame: str = ""  # "ED" or "ES" where the data says so
    group: str = ""  # ACDC's Info.cfg Group (NOR, MINF, DCM, HCM, RV) where there is one


def parse_sets(text: str, site: Optional[PathLike] = None) -> List[str]:
    """Comma-separated set names -> list in Table 1 order; "all" means every set (site only with a folder)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        names = list(DEFAULT_SETS) + (["site"] if site is not None else [])
    unknown = sorted(set(names) - set(TEST_SETS))
    if unknown or not names:
        raise CoopSegError(f"unknown test set(s) {', '.join(unknown) or '(none given)'}; "
                           f"choose from {', '.join(TEST_SETS)} or 'all'")
    if "site" in names and site is None:
        raise CoopSegError("the 'site' test set needs --site DIR (another site's labelled data)")
    return [name for name in TEST_SETS if name in names]


def read_site(folder: PathLike) -> List[Case]:
    """ED and ES cases of another site's folder: M&Ms, nnU-Net or ACDC layout, recognised by its files."""
    from CoopSegLib.data.readers import read_acdc, read_mnms, read_nnunet

    folder = Path(folder)
    if not folder.is_dir():
        raise CoopSegError(f"{folder}: site folder not found")
    if (folder / "imagesTr").is_dir():
        return read_nnunet(folder)
    if any(folder.rglob("*_sa.nii.gz")):
        return read_mnms(folder)
    if any(child.is_dir() and child.name.startswith("patient") for child in folder.iterdir()):
        return read_acdc(folder)
    raise CoopSegError(f"{folder}: not an M&Ms (<code>_sa.nii.gz), nnU-Net (imagesTr/) or ACDC (patientNNN/) folder")


def _evaluation_case(set_name: str, case: Case, key: str = "", image: Optional[Volume] = None) -> EvaluationCase:
    if case.label is None:
        raise CoopSegError(f"{case.source}: no reference label map to evaluate against")
    return EvaluationCase(set_name, key or case.key, case.image if image is None else image, case.label,
                          case.subject, case.frame, str(case.metadata.get("group", "")))


def build_test_sets(data: PathLike, sets: Sequence[str] = DEFAULT_SETS, subjects: Optional[Sequence[str]] = None,
                    copies: int = 3, seed: int = 0, site: Optional[PathLike] = None) -> Iterator[EvaluationCase]:
    """Cases of the named sets from the ACDC-layout folder ``data`` (and ``site``), set by set."""
    from CoopSegLib.data.readers import list_acdc_subjects, read_acdc_subject

    if copies < 1:
        raise CoopSegError(f"--copies must be at least 1, got {copies}")
    data = Path(data)
    names = list(subjects) if subjects else list_acdc_subjects(data)
    for name in names:  # fail before any work on a misspelt subject
        if not (data / name).is_dir():
            raise CoopSegError(f"{data / name}: ACDC subject folder not found")
    for set_name in sets:
        if set_name == "clean":
            for subject in names:
                for case in read_acdc_subject(data / subject, ("ED", "ES")):
                    yield _evaluation_case("clean", case)
        elif set_name == "site":
            if site is None:
                raise CoopSegError("the 'site' test set needs --site DIR (another site's labelled data)")
            for case in read_site(site):
                yield _evaluation_case("site", case)
        elif set_name in CORRUPTIONS:
            for subject in names:
                (case,) = read_acdc_subject(data / subject, ("ES",))
                stem = strip_nifti_suffix(case.source)
                for copy in range(1, copies + 1):
                    array = corrupt_volume(case.image, set_name, corruption_seed(seed, set_name, stem, copy))
                    yield _evaluation_case(set_name, case, f"{case.key}_{set_name}_{copy}",
                                           Volume(array, case.image.affine))
        else:
            raise CoopSegError(f"unknown test set {set_name!r}; choose from {', '.join(TEST_SETS)}")
