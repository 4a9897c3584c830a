// A musicrec client in Node.js. The proto file is the contract for every language: it is loaded at run
// time (@grpc/proto-loader), so there is no generated code to keep in step.
//
//   npm ci && node client.js [HOST:PORT] [MOOD]      (default 127.0.0.1:50051; MOOD as `musicrec query playlist --mood`)
//
// StreamMoodPlaylist prints the playlist's tracks as the server chooses them, then SimilarTracks finds the
// tracks most like the playlist's first one. Exit status 1 with the gRPC status on any error.

"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO = path.join(__dirname, "..", "..", "protos", "musicrec", "v1", "recommender.proto");
const DEADLINE_MS = 10_000;

const address = process.argv[2] || "127.0.0.1:50051";
const mood = process.argv[3];

// keepCase: the proto's own field names (track_id), as every other client sees them.
const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const { Recommender } = grpc.loadPackageDefinition(definition).musicrec.v1;
const client = new Recommender(address, grpc.credentials.createInsecure());

const deadline = () => new Date(Date.now() + DEADLINE_MS);

function unary(method, request) {
  return new Promise((resolve, reject) =>
    client[method](request, { deadline: deadline() }, (err, response) => (err ? reject(err) : resolve(response))));
}

function streamPlaylist(request, onEntry) {
  return new Promise((resolve, reject) => {
    const call = client.StreamMoodPlaylist(request, { deadline: deadline() });
    call.on("data", onEntry);
    call.on("error", reject);
    call.on("end", resolve);
  });
}

const describe = (track) => `${track.track_id}  ${track.name} - ${track.artists.join(", ")} (${track.genres.join(", ")})`;

async function main() {
  const request = mood === undefined ? { mood_id: 0, length: 5 } : { mood_name: mood, length: 5 };
  const entries = [];
  await streamPlaylist(request, (entry) => {
    entries.push(entry);
    console.log(`playlist ${entry.position + 1}  ${describe(entry.track)}  [${entry.track.mood_name}]`);
  });
  if (entries.length === 0) throw new Error("the playlist is empty");

  const seed = entries[0].track;
  const similar = await unary("SimilarTracks", { seeds: [{ track_id: seed.track_id }], k: 5 });
  for (const result of similar.results) {
    console.log(`similar ${result.score.toFixed(3)}  ${describe(result.track)}`);
  }
  console.log(`${similar.results.length} similar tracks in ${similar.stats.took_ms.toFixed(2)} ms (server time)`);
}

main()
  .then(() => client.close())
  .catch((err) => {
    const status = err.code === undefined ? "error" : grpc.status[err.code];
    console.error(`musicrec node client: ${status}: ${err.details || err.message}`);
    client.close();
    process.exit(1);
  });
