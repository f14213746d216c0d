FROM python:3.11-slim
# Production by default: DEBUG off, so SECRET_KEY and ALLOWED_HOSTS must be given at run time
# (the settings refuse to start without them); gunicorn listens on the container's network.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DEBUG=0 TANYS_BIND=0.0.0.0:8000 \
    MEDIA_ROOT=/data/media STATIC_ROOT=/app/staticfiles
RUN apt-get update && apt-get install -y --no-install-recommends gettext && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config config
COPY surveys surveys
COPY analytics analytics
COPY audit audit
COPY odk odk
COPY apitokens apitokens
COPY collect collect
COPY access access
COPY templates templates
COPY locale locale
COPY manage.py ./
RUN pip install --no-cache-dir .
# Static files and catalogues are built into the image (build-time values, never used to serve).
RUN SECRET_KEY=image-build-only ALLOWED_HOSTS=build.invalid python manage.py collectstatic --no-input -v 0 \
    && SECRET_KEY=image-build-only ALLOWED_HOSTS=build.invalid python manage.py compilemessages -v 0
RUN useradd --system --home /app tanys && mkdir -p /data/media && chown tanys /data/media
USER tanys
EXPOSE 8000
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi:application"]
