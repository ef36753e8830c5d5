"""Presentation: Jinja2 templates and the code that renders HTML, CSV and e-mail bodies.

Renders what it is given and fetches nothing: no store, no network, no clock.
"""
