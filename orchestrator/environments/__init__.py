"""Project environments: what a repository's work needs, set up once with network, frozen and cached."""
