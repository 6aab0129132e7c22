"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

from privacy import create_app

app = create_app()
