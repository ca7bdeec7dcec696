"""`mindscape check`: the platform's quality gates, proven against the running platform.

model.py holds what a gate and its result are and the runner; one module per group of gates
(config, services, database, security, monitoring, backups) says what each gate checks;
gates.py collects them for a project; report.py turns results into a table, JSON or JUnit.
"""
