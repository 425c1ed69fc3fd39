FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY src ./src
RUN pip install --no-cache-dir .
EXPOSE 6066
ENTRYPOINT ["spikedetect"]
CMD ["worker"]
