"""Workers: RQ queues, thin job entry points, the scheduler, the sweeper and the embedded runner."""
