"""PostgreSQL: the tables analysts and the read API use, their migrations, the worker's row sink and the reads."""
