"""What the schedule builders share: stage partitioning, stage templates, HEFT ranks, list
scheduling and the classic pipeline orders."""
