"""The Slicer module's files agree with each other: the .ui has every widget CoopSeg.py uses, every parameter-bound
widget names a field of the parameter node, CMake installs every script, and the catalog entries and icon are valid.
(CoopSeg.py itself imports Qt, so it is read as source here; the self-test runs it inside Slicer.)"""

from __future__ import annotations

import ast
import json
import re
import xml.etree.ElementTree as ElementTree

from PIL import Image

from data_helpers import REPO

MODULE = REPO / "CoopSeg"
SOURCE = (MODULE / "CoopSeg.py").read_text()
UI = ElementTree.parse(MODULE / "Resources" / "UI" / "CoopSeg.ui").getroot()


def ui_widgets() -> dict:
    return {w.get("name"): w for w in UI.iter("widget")}


def parameter_fields() -> set:
    tree = ast.parse(SOURCE)
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "CoopSegParameterNode")
    return {item.target.id for item in node.body if isinstance(item, ast.AnnAssign)}


def test_every_widget_the_code_uses_is_in_the_ui():
    used = set(re.findall(r"self\.ui\.(\w+)", SOURCE))
    assert used and used <= set(ui_widgets()), sorted(used - set(ui_widgets()))


def test_parameter_bound_widgets_name_parameter_node_fields():
    bound = {w.get("name"): p.find("string").text for w in UI.iter("widget") for p in w.findall("property")
             if p.get("name") == "SlicerParameterName"}
    assert set(bound.values()) <= parameter_fields()
    assert {"inputVolume", "previewSlice", "previewFraction", "previewSoftFactor", "previewSeed", "edVolume",
            "esVolume"} <= set(bound.values())


def test_node_selectors_get_the_scene():
    receivers = {c.find("receiver").text for c in UI.iter("connection")
                 if c.find("signal").text == "mrmlSceneChanged(vtkMRMLScene*)"}
    selectors = {name for name, w in ui_widgets().items() if w.get("class") in ("qMRMLNodeComboBox", "qMRMLTableView")}
    assert selectors and selectors <= receivers


def test_cmake_installs_every_module_script():
    cmake = (MODULE / "CMakeLists.txt").read_text()
    scripts = sorted(str(p.relative_to(MODULE)) for p in MODULE.rglob("*.py") if "__pycache__" not in p.parts)
    assert all(script in cmake for script in scripts), [s for s in scripts if s not in cmake]
    assert "WITH_GENERIC_TESTS" in cmake and "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in cmake
    assert "Resources/UI/${MODULE_NAME}.ui" in cmake and "Resources/Icons/${MODULE_NAME}.png" in cmake


def test_extension_metadata_is_consistent():
    top = (REPO / "CMakeLists.txt").read_text()
    for name in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                 "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"):
        assert re.search(rf"set\({name} \"[^\"]+\"\)", top), name
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in top
    screenshots = re.search(r'set\(EXTENSION_SCREENSHOTURLS "([^"]+)"\)', top).group(1).split()
    for url in screenshots:  # every advertised picture exists in the repository
        assert (REPO / url.split("/main/", 1)[1]).is_file(), url
    entry = json.loads((REPO / "CoopSeg.json").read_text())
    assert {"$schema", "category", "scm_url"} <= set(entry) and entry["build_dependencies"] == ["PyTorch"]
    s4ext = dict(line.split(" ", 1) for line in (REPO / "CoopSeg.s4ext").read_text().splitlines()
                 if line and not line.startswith("#"))
    assert s4ext["depends"] == "PyTorch" and s4ext["scmurl"] == entry["scm_url"]


def test_icon_is_a_128_pixel_png():
    with Image.open(MODULE / "Resources" / "Icons" / "CoopSeg.png") as icon:
        assert icon.format == "PNG" and icon.size == (128, 128)
    assert (REPO / "LICENSE").is_file()


def test_the_minimum_slicer_is_declared_alike_everywhere():
    minimum = re.search(r"^MINIMUM_SLICER = \((\d+), (\d+)\)", SOURCE, re.M)
    version = f"{minimum.group(1)}.{minimum.group(2)}"
    assert f"Slicer {version} or newer" in (REPO / "README.md").read_text()
    assert f"Slicer {version} or newer" in (REPO / "CoopSeg.s4ext").read_text()
    assert f"Slicer {version} or newer" in (REPO / "CMakeLists.txt").read_text()


# APIs newer than the declared minimum (5.6) that must not come back: vtkSegment's terminology accessors are 5.10's.
NEWER_THAN_MINIMUM = ("SetTerminology(", "GetTerminology(", "HasTerminology(")


def test_no_api_newer_than_the_minimum_slicer_is_called():
    sources = [MODULE / "CoopSeg.py", *sorted((MODULE / "CoopSegMRML").glob("*.py"))]
    for path in sources:
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        code = re.sub(r'""".*?"""', "", code, flags=re.S)  # docstrings may name them
        assert not [name for name in NEWER_THAN_MINIMUM if f".{name}" in code], path.name


def test_inference_runs_in_the_worker_process_not_on_a_thread():
    assert "threading" not in SOURCE and "slicer.util.launchConsoleProcess" in SOURCE
    assert 'shutil.which("PythonSlicer")' in SOURCE
    logic = (MODULE / "CoopSegMRML" / "logic.py").read_text()
    assert "threading" not in logic and ".segment(" not in logic.replace("def segment(", "")
