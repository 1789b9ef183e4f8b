"""`shipyard eval`: SWE-bench-style instances run as Shipyard jobs and graded by their hidden tests.

instances.py reads the official JSONL; runner.py runs each instance as a job and keeps the
results (resumable); grading.py applies the hidden tests and runs them in a sandbox;
results.py writes the JSON, the markdown table and SWE-bench predictions; mini_suite/ is
the bundled offline suite. docs/eval.md tells how to run SWE-bench Lite or Verified.
"""
