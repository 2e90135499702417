# The interop binary: gateway, worker, migrate and the tools. Built on a machine with Docker;
# the development machine of this project has none, so this file is kept consistent with the
# code by review, not by a build in CI.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/interop ./cmd/interop

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/interop /interop
USER nonroot
EXPOSE 8080 2575
ENTRYPOINT ["/interop"]
CMD ["gateway"]
