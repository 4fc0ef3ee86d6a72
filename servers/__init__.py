"""Local web servers started for the user: the MLflow UI (or a team tracking server) and
optuna-dashboard, each in its own process group."""
