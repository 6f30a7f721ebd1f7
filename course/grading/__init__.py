"""Exercise notebooks: their format, the build from solutions/, the check runner, verdicts and class grading."""
