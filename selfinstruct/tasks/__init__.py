"""What teacher jobs ask: each task turns its work into requests and its answers into records.

    bootstrap/   Alpaca's self-instruct loop: seed tasks in, new tasks out (`generate`)
"""
