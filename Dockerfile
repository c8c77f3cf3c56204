# remediator, as deploy/ runs it. Builds render with kustomize, so the image carries it; Helm
# releases render only where helm is added. libgit2 and OpenSSL are vendored: no git binary or
# system OpenSSL is needed at run time.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin remediator

FROM registry.k8s.io/kustomize/kustomize:v5.5.0 AS kustomize

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/remediator /usr/local/bin/remediator
COPY --from=kustomize /app/kustomize /usr/local/bin/kustomize
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/remediator"]
CMD ["serve"]
