# Forklift: build a release binary, run it as a non-root user on Debian slim.
#
#   docker build -t forklift .
#   docker run -p 8080:8080 -v forklift-data:/var/lib/forklift \
#     -e FORKLIFT_BASE_URL=http://packages.example.com:8080 forklift
#
# Set FORKLIFT_BASE_URL: it is the URL written into the .repo files, and the
# default (http://<listen>) would be http://0.0.0.0:8080.

FROM rust:1-bookworm AS build
WORKDIR /src
# SQLite and libpq are compiled in (bundled); libpq links the system OpenSSL,
# whose headers and pkg-config ship in this image.
COPY . .
RUN cargo build --release --locked \
 && install -m 0755 target/release/forklift /usr/local/bin/forklift

FROM debian:bookworm-slim
# ca-certificates pulls in openssl and with it libssl3, which the binary links.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --home-dir /var/lib/forklift --shell /usr/sbin/nologin forklift \
 && install -d -o forklift -g forklift -m 0750 /var/lib/forklift
COPY --from=build /usr/local/bin/forklift /usr/local/bin/forklift
ENV FORKLIFT_DATA_DIR=/var/lib/forklift FORKLIFT_LISTEN=0.0.0.0:8080
VOLUME /var/lib/forklift
WORKDIR /var/lib/forklift
USER forklift
EXPOSE 8080
ENTRYPOINT ["forklift"]
CMD ["serve"]
