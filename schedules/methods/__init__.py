"""One module per scheduling method; :mod:`schedules.registry` says what each accepts."""
