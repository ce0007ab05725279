"""Dev tools hung off the `scorer` CLI: demo, bench, replay, embedded servers, worker processes.
The worker path never imports them."""
