"""Settings of the example site: the smallest set a streaming chat view needs.

No database: the conversation lives in the session, and the session in the
cache. Any server-side session backend works (``db``, ``cache``,
``cached_db``, ``file``); ``signed_cookies`` does not, because the reply is
saved to the session after the response's headers, cookies included, have
been sent.
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = ["chat"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "chatsite.urls"
WSGI_APPLICATION = "chatsite.wsgi.application"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES: dict = {}
# The local-memory cache is per process: fine for runserver and tests; in
# production use "cached_db" or a shared cache (Redis, Memcached).
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
USE_TZ = True

# The LLM service. Without LLMCLIENTS_BASE_URL the app answers from the
# provider's local emulator, so that it runs anywhere.
LLMCLIENTS = {
    "provider": os.environ.get("LLMCLIENTS_PROVIDER") or "openai",
    "base_url": os.environ.get("LLMCLIENTS_BASE_URL") or None,
    "model": os.environ.get("LLMCLIENTS_MODEL") or None,
    "api_key": os.environ.get("LLMCLIENTS_API_KEY") or None,
    "timeout": (10.0, 60.0),  # connect, and the longest wait for the next byte
    "system": "You are a helpful assistant. Answer briefly.",
}
