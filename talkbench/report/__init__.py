"""Reports: HTML page, figures and table exports."""
