import subprocess
import sys

from CoopSegLib import __version__
from CoopSegLib.cli import main


def test_module_entry_point_reports_the_version():
    result = subprocess.run([sys.executable, "-m", "CoopSegLib", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == f"CoopSeg {__version__}"


def test_no_command_prints_usage_and_fails(capsys):
    assert main([]) == 2
    assert "usage: coopseg" in capsys.readouterr().err
