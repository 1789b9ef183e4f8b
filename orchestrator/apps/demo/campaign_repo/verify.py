"""The campaign's verifier: how many tests fail (its last line), exit 0 when none does."""

import subprocess
import sys

run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                     capture_output=True, text=True)
failing = sum(1 for line in run.stdout.splitlines() if line.startswith("FAILED "))
print(run.stdout.strip().splitlines()[-1] if run.stdout.strip() else "no output")
print(f"failing tests: {failing}")
sys.exit(0 if failing == 0 and run.returncode == 0 else 1)
