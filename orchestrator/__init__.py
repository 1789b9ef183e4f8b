"""The job graph, jobs and workers, events, configuration, CLI and the GitHub App."""
