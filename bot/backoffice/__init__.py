"""The back office at work: notices, staff alerts and threads, surveys, deadlines, workers."""
