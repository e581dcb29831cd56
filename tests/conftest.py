import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Beanpole

APPS = Path(__file__).parent / "apps"
EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture
def beanpole(tmp_path_factory):
    """A running Beanpole server in a fresh BEANPOLE_HOME; everything it started is stopped."""
    if shutil.which("haproxy") is None:
        pytest.skip("HAProxy is not installed (scripts/bootstrap.sh installs it)")
    bp = Beanpole(tmp_path_factory.mktemp("home"))
    try:
        bp.start()
        yield bp
    finally:
        bp.stop_all()


@pytest.fixture
def pid_app(tmp_path):
    """A copy of the dependency-free test app, free to be edited by the test."""
    dest = tmp_path / "pid-app"
    shutil.copytree(APPS / "pid", dest)
    return dest
