# syntax=docker/dockerfile:1
# crm-server: built in a full Rust image, run from a distroless one (no shell, no
# package manager, a non-root user). TLS roots are compiled in (rustls + webpki-roots).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p crm-http --bin crm-server \
    && mkdir -p /data \
    && chown 65532:65532 /data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/crm-server /usr/local/bin/crm-server
COPY --from=build --chown=65532:65532 /data /data
WORKDIR /data
ENV CRM_BIND=0.0.0.0:8080 \
    CRM_DATABASE_URL=sqlite:///data/crm.db \
    CRM_MAIL_DIR=/data/mail-outbox \
    CRM_FILES_DIR=/data/files \
    CRM_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/data"]
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/crm-server"]
CMD ["serve"]
