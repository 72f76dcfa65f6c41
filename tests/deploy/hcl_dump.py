"""Parse Terraform files with the HCL2 parser checkov ships (bc-python-hcl2) and print them as JSON: run by the
deploy-tools venv's python (tests/deploy/test_terraform.py), since that parser is not in the project venv."""

from __future__ import annotations

import json
import sys

import hcl2  # type: ignore[import-not-found]

parsed = {}
for path in sys.argv[1:]:
    with open(path) as f:
        parsed[path] = hcl2.load(f)
json.dump(parsed, sys.stdout)
