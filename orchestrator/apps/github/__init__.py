"""The GitHub App: issues and comments in, pull requests out.

`shipyard github serve` runs two things in one process:

- the webhook endpoint (webhook.py): it checks each delivery's signature, refuses replays,
  stores the delivery and answers at once;
- the desk (desk.py), a thread that turns stored deliveries into jobs on the queue the
  workers (`shipyard serve`) take them from, keeps one status comment per job up to date
  from the job's events, and publishes finished jobs (publish.py): a pushed branch and a
  pull request, or new commits on the pull request a follow-up came from; and it looks
  after the checks of the pull requests it opened (ci.py).

The App reaches the rest of Shipyard only through jobs_api.py, GitHub only through
client.py (REST) and git_remote.py (git), which share one credential path (auth.py) and
honour GitHub's rate limits per installation (rate_limits.py).

Only this process holds the App's private key and its installation tokens; workers and
their sandboxes never see them. Jobs work on a clone of the repository that this process
keeps in the state directory, so the workers must share that directory (the same machine,
or a shared file system), as they already do for jobs on repositories given by URL.
"""
