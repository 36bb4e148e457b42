"""Hook-name vocabulary (the only place hook strings are spelled)."""
