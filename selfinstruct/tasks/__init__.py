"""What teacher jobs ask: each task turns its work into requests and its answers into records.

bootstrap/   Alpaca's self-instruct loop: seed tasks in, new tasks out (`generate`)
answer.py    a teacher answers given instructions, keeping its reasoning (`answer`)
judge/       a teacher rates every record 0-5, the best are kept (`judge`, AlpaGasus)
registry.py  the commands above, by name: each task's entry (config, run, estimate, options)
"""
