"""The `build` stage (`slm build`, `runs/<run>/build/`): named quality rules, leak-free splits, formats, the dataset card.

The package is named for what it makes, not `build/`: standard `.gitignore` templates and formatters treat any `build`
folder as generated output and would silently drop it."""
