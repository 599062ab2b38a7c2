"""The heavy clients' venvs are built by make (``make clients``, which ``make test`` runs
first), from tests/clients/NAME.txt, and are current: no test installs them."""

import pytest

from tests.client_venvs import REQUIREMENTS, client_bin


@pytest.mark.parametrize("name", sorted(p.stem for p in REQUIREMENTS.glob("*.txt")))
def test_the_client_venv_is_built_from_its_requirements(name: str) -> None:
    assert client_bin(name).exists()
