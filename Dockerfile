# syntax=docker/dockerfile:1
#
# scimjit: static binary on a distroless base, running as a non-root user.
#   docker build -t scimjit .
#   docker run --rm -p 8080:8080 scimjit                      # demo mode, in-memory
#   docker run --rm -p 8080:8080 \
#     -e SCIMJIT_REDIS_URL=redis://redis:6379/0 \
#     -e SCIMJIT_BASE_URL=https://scimjit.example.com \
#     -e SCIMJIT_ADMIN_TOKEN_FILE=/run/secrets/admin scimjit
# Every flag has a SCIMJIT_* variable (docs/configuration.md).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/scimjit ./cmd/scimjit

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/scimjit /usr/local/bin/scimjit
# Listen on all interfaces inside the container; set SCIMJIT_BASE_URL to the
# URL people and IdPs use.
ENV SCIMJIT_LISTEN=0.0.0.0:8080 \
    SCIMJIT_LOG_FORMAT=json
EXPOSE 8080
USER nonroot:nonroot
# Liveness: GET /healthz; readiness: GET /readyz (the store answers). The
# image has no curl, so the binary checks itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["/usr/local/bin/scimjit", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/scimjit"]
CMD ["serve"]
