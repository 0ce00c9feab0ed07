// Signal's Double Ratchet, as shipped in @signalapp/libsignal-client (Rust,
// called from Node through its N-API bridge), per message: the counterpart of
// tests/bench/ratchet_bench.cc (issue 5 §6). Measured, never asserted.
//
//   node bench.mjs [--messages N] [--warmup N] [--size BYTES] [--rounds N]
//
// Two parties in one process, each with its own minimal in-memory stores (the
// cheapest stores possible: records are kept as the library's objects, never
// serialized; every identity is trusted). Bob publishes a PreKeyBundle with a
// one-time prekey, a signed prekey and a signed Kyber (ML-KEM-1024) prekey,
// which this library requires; Alice processes it (PQXDH) and the two exchange
// a few messages so that both sessions are established. Then, with 1 KiB
// plaintexts (by default), one message = encrypt (signalEncrypt + serialize)
// by the sender and decrypt (SignalMessage.deserialize + signalDecrypt) by the
// receiver, awaited one after the other and timed together on the wall clock:
//   - ping-pong: A->B, B->A alternating, so every message carries a new ratchet
//     key (a DH ratchet step);
//   - burst: A->B only (one symmetric chain step per message).
// Each round and shape: --warmup messages untimed, then --messages timed ones
// (defaults 500 and 2000); rounds alternate the shapes (default 3 rounds) and
// every figure printed is the median over rounds. Per round it prints
// p50, p90 and mean of the per-message times, the process CPU time
// (process.cpuUsage: user + system, all threads) per message, and the p50 of
// the encrypt half and of the decrypt half separately.
//
// NOT THE SAME WORK as Rhizome's ratchet: libsignal adds post-quantum steps
// that ours does not have. Session set-up is PQXDH (ML-KEM-1024 on top of
// X25519; not timed here), and every message also carries the
// Sparse Post-Quantum Ratchet (SPQR): chunks of ML-KEM keys and ciphertexts,
// with an encapsulation or decapsulation now and then, mixed into the message
// keys. Its message format is AES-256-CBC + HMAC-SHA256 (truncated to 8 bytes)
// with no header encryption; ours is XChaCha20-Poly1305 for the body and for
// an encrypted header. Every call also crosses the Node bridge (promises, store
// callbacks into JavaScript); that is how this library is used from Node.
//
// The last line is machine-readable for scripts/bench-ratchet.sh:
//   RESULT libsignal_version=... pingpong_p50_us=... burst_p50_us=... ...
import {
  IdentityKeyPair,
  IdentityKeyStore,
  KEMKeyPair,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  PreKeyBundle,
  PreKeyRecord,
  PreKeySignalMessage,
  PreKeyStore,
  PrivateKey,
  ProtocolAddress,
  SessionStore,
  SignalMessage,
  SignedPreKeyRecord,
  SignedPreKeyStore,
  CiphertextMessageType,
  IdentityChange,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from '@signalapp/libsignal-client';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

function parseArgs(argv) {
  const opts = { messages: 2000, warmup: 500, size: 1024, rounds: 3 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    const value = Number(argv[i + 1]);
    if (!(key in opts) || !Number.isInteger(value) || value <= 0 || value > 1_000_000) {
      console.error('usage: node bench.mjs [--messages N] [--warmup N] [--size BYTES] [--rounds N]');
      process.exit(2);
    }
    opts[key] = value;
  }
  return opts;
}

class MemorySessionStore extends SessionStore {
  #sessions = new Map();
  async saveSession(address, record) {
    this.#sessions.set(address.toString(), record);
  }
  async getSession(address) {
    return this.#sessions.get(address.toString()) ?? null;
  }
  async getExistingSessions(addresses) {
    return addresses.map((a) => {
      const r = this.#sessions.get(a.toString());
      if (!r) throw new Error(`no session for ${a.toString()}`);
      return r;
    });
  }
}

class MemoryIdentityStore extends IdentityKeyStore {
  #identity;
  #registrationId;
  #known = new Map();
  constructor(identity, registrationId) {
    super();
    this.#identity = identity;
    this.#registrationId = registrationId;
  }
  async getIdentityKey() {
    return this.#identity.privateKey;
  }
  async getLocalRegistrationId() {
    return this.#registrationId;
  }
  async saveIdentity(address, key) {
    const name = address.toString();
    const old = this.#known.get(name);
    this.#known.set(name, key);
    return old && !old.equals(key) ? IdentityChange.ReplacedExisting : IdentityChange.NewOrUnchanged;
  }
  async isTrustedIdentity() {
    return true;
  }
  async getIdentity(address) {
    return this.#known.get(address.toString()) ?? null;
  }
}

class MemoryPreKeyStore extends PreKeyStore {
  #keys = new Map();
  async savePreKey(id, record) {
    this.#keys.set(id, record);
  }
  async getPreKey(id) {
    const r = this.#keys.get(id);
    if (!r) throw new Error(`no prekey ${id}`);
    return r;
  }
  async removePreKey(id) {
    this.#keys.delete(id);
  }
}

class MemorySignedPreKeyStore extends SignedPreKeyStore {
  #keys = new Map();
  async saveSignedPreKey(id, record) {
    this.#keys.set(id, record);
  }
  async getSignedPreKey(id) {
    const r = this.#keys.get(id);
    if (!r) throw new Error(`no signed prekey ${id}`);
    return r;
  }
}

class MemoryKyberPreKeyStore extends KyberPreKeyStore {
  #keys = new Map();
  async saveKyberPreKey(id, record) {
    this.#keys.set(id, record);
  }
  async getKyberPreKey(id) {
    const r = this.#keys.get(id);
    if (!r) throw new Error(`no kyber prekey ${id}`);
    return r;
  }
  async markKyberPreKeyUsed() {}
}

function makeParty(name, registrationId) {
  const identity = IdentityKeyPair.generate();
  return {
    address: ProtocolAddress.new(name, 1),
    identity,
    registrationId,
    sessions: new MemorySessionStore(),
    identities: new MemoryIdentityStore(identity, registrationId),
    preKeys: new MemoryPreKeyStore(),
    signedPreKeys: new MemorySignedPreKeyStore(),
    kyberPreKeys: new MemoryKyberPreKeyStore(),
  };
}

// Bob's published bundle: one-time prekey, signed prekey, signed Kyber prekey.
async function publishBundle(bob) {
  const now = Date.now();
  const preKey = PrivateKey.generate();
  await bob.preKeys.savePreKey(1, PreKeyRecord.new(1, preKey.getPublicKey(), preKey));
  const signedPreKey = PrivateKey.generate();
  const signedPub = signedPreKey.getPublicKey();
  const signedSig = bob.identity.privateKey.sign(signedPub.serialize());
  await bob.signedPreKeys.saveSignedPreKey(
    2, SignedPreKeyRecord.new(2, now, signedPub, signedPreKey, signedSig));
  const kyber = KEMKeyPair.generate();
  const kyberSig = bob.identity.privateKey.sign(kyber.getPublicKey().serialize());
  await bob.kyberPreKeys.saveKyberPreKey(3, KyberPreKeyRecord.new(3, now, kyber, kyberSig));
  return PreKeyBundle.new(bob.registrationId, 1, 1, preKey.getPublicKey(), 2, signedPub, signedSig,
                          bob.identity.publicKey, 3, kyber.getPublicKey(), kyberSig);
}

// One message from `from` to `to`: encrypt, serialize, deserialize, decrypt.
async function deliver(from, to, plaintext) {
  const t0 = process.hrtime.bigint();
  const ct = await signalEncrypt(plaintext, to.address, from.address, from.sessions, from.identities);
  const wire = ct.serialize();
  const t1 = process.hrtime.bigint();
  let out;
  if (ct.type() === CiphertextMessageType.PreKey) {
    out = await signalDecryptPreKey(PreKeySignalMessage.deserialize(wire), from.address, to.address,
                                    to.sessions, to.identities, to.preKeys, to.signedPreKeys,
                                    to.kyberPreKeys);
  } else if (ct.type() === CiphertextMessageType.Whisper) {
    out = await signalDecrypt(SignalMessage.deserialize(wire), from.address, to.address, to.sessions,
                              to.identities);
  } else {
    throw new Error(`unexpected ciphertext type ${ct.type()}`);
  }
  const t2 = process.hrtime.bigint();
  return { out, type: ct.type(), wireBytes: wire.length, t0, t1, t2 };
}

// Field by field, the median over rounds (rounds: an odd count is best).
function medianOfRounds(list) {
  const out = { label: list[0].label, rounds: list.map((r) => r.p50) };
  for (const key of Object.keys(list[0])) {
    if (typeof list[0][key] !== 'number') continue;
    const values = list.map((r) => r[key]).sort((a, b) => a - b);
    out[key] = values[Math.floor((values.length - 1) / 2)];
  }
  return out;
}

function percentile(sorted, p) {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

async function measure(label, pick, alice, bob, opts) {
  const plaintext = new Uint8Array(randomBytes(opts.size));
  let wireBytes = 0;
  for (let i = 0; i < opts.warmup; ++i) {
    const [from, to] = pick(i, alice, bob);
    await deliver(from, to, plaintext);
  }
  const times = new Float64Array(opts.messages);
  const encTimes = new Float64Array(opts.messages);
  const decTimes = new Float64Array(opts.messages);
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  for (let i = 0; i < opts.messages; ++i) {
    const [from, to] = pick(i, alice, bob);
    const r = await deliver(from, to, plaintext);
    times[i] = Number(r.t2 - r.t0) / 1000;  // µs
    encTimes[i] = Number(r.t1 - r.t0) / 1000;
    decTimes[i] = Number(r.t2 - r.t1) / 1000;
    if (r.type !== CiphertextMessageType.Whisper || r.out.length !== plaintext.length ||
        Buffer.compare(Buffer.from(r.out), Buffer.from(plaintext)) !== 0) {
      throw new Error(`${label}: message ${i} did not round-trip`);
    }
    wireBytes = r.wireBytes;
  }
  const wall = Number(process.hrtime.bigint() - wall0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const sorted = Float64Array.from(times).sort();
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  return {
    label,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    encP50: percentile(encTimes.sort(), 50),
    decP50: percentile(decTimes.sort(), 50),
    mean,
    wallPerMsg: wall / opts.messages,
    cpuPerMsg: (cpu.user + cpu.system) / opts.messages,
    wireBytes,
  };
}

// The bridge and Rust's X25519 alone, for context: one PrivateKey.agree.
function measureAgree(n) {
  const a = PrivateKey.generate();
  const b = PrivateKey.generate().getPublicKey();
  for (let i = 0; i < 200; ++i) a.agree(b);
  const times = new Float64Array(n);
  for (let i = 0; i < n; ++i) {
    const t0 = process.hrtime.bigint();
    a.agree(b);
    times[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return percentile(Float64Array.from(times).sort(), 50);
}

function libraryVersion() {
  const require = createRequire(import.meta.url);
  const path = require.resolve('@signalapp/libsignal-client/package.json');
  return JSON.parse(readFileSync(path, 'utf8')).version;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const alice = makeParty('alice', 1111);
  const bob = makeParty('bob', 2222);
  await processPreKeyBundle(await publishBundle(bob), bob.address, alice.address, alice.sessions,
                            alice.identities);
  // Establish: Alice's first messages are PreKey messages until Bob answers.
  const hello = new Uint8Array(randomBytes(opts.size));
  const first = await deliver(alice, bob, hello);
  if (first.type !== CiphertextMessageType.PreKey) throw new Error('first message is not PreKey');
  for (let i = 0; i < 4; ++i) {
    await deliver(bob, alice, hello);
    await deliver(alice, bob, hello);
  }

  // Rounds alternate the shapes, so both see the same moments of a shared
  // machine; the figures reported are the medians over rounds.
  const rounds = { pingPong: [], burst: [] };
  for (let k = 0; k < opts.rounds; ++k) {
    rounds.pingPong.push(await measure('ping-pong', (i, a, b) => (i % 2 === 0 ? [a, b] : [b, a]),
                                       alice, bob, opts));
    rounds.burst.push(await measure('burst', (_i, a, b) => [a, b], alice, bob, opts));
  }
  const pingPong = medianOfRounds(rounds.pingPong);
  const burst = medianOfRounds(rounds.burst);
  const agreeP50 = measureAgree(2000);

  const version = libraryVersion();
  console.log(`@signalapp/libsignal-client ${version}, node ${process.version}, ` +
              `${opts.size}-byte plaintext, ${opts.rounds} rounds of ${opts.warmup} warm-up + ` +
              `${opts.messages} timed messages per shape (figures: medians over rounds)`);
  console.log('one message = signalEncrypt + serialize (sender), deserialize + signalDecrypt (receiver)');
  console.log('NOTE: libsignal adds post-quantum steps Rhizome\'s ratchet does not have: PQXDH set-up ' +
              '(ML-KEM-1024) and the per-message SPQR ratchet (ML-KEM chunks in every message).');
  console.log('shape       p50 µs/msg  p90 µs/msg  mean µs/msg  CPU µs/msg  enc p50  dec p50  wire bytes');
  for (const r of [pingPong, burst]) {
    console.log(`${r.label.padEnd(10)}  ${r.p50.toFixed(1).padStart(10)}  ${r.p90.toFixed(1).padStart(10)}` +
                `  ${r.mean.toFixed(1).padStart(11)}  ${r.cpuPerMsg.toFixed(1).padStart(10)}` +
                `  ${r.encP50.toFixed(1).padStart(7)}  ${r.decP50.toFixed(1).padStart(7)}` +
                `  ${String(r.wireBytes).padStart(10)}`);
  }
  console.log(`p50 per round (µs): ping-pong ${pingPong.rounds.map((v) => v.toFixed(1)).join(' ')}; ` +
              `burst ${burst.rounds.map((v) => v.toFixed(1)).join(' ')}`);
  console.log(`context: one X25519 agree through the bridge (PrivateKey.agree), p50 ${agreeP50.toFixed(1)} µs`);
  console.log(`RESULT libsignal_version=${version} node=${process.version} size=${opts.size} ` +
              `messages=${opts.messages} rounds=${opts.rounds} ` +
              `pingpong_p50_us=${pingPong.p50.toFixed(2)} pingpong_mean_us=${pingPong.mean.toFixed(2)} ` +
              `pingpong_cpu_us=${pingPong.cpuPerMsg.toFixed(2)} pingpong_wire_bytes=${pingPong.wireBytes} ` +
              `burst_p50_us=${burst.p50.toFixed(2)} burst_mean_us=${burst.mean.toFixed(2)} ` +
              `burst_cpu_us=${burst.cpuPerMsg.toFixed(2)} burst_wire_bytes=${burst.wireBytes} ` +
              `agree_p50_us=${agreeP50.toFixed(2)}`);
}

main().catch((e) => {
  console.error(`libsignal bench failed: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
