"""The screens of the TUI: overview, recommendations, experiments, and dialogs."""
