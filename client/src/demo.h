// `rhizome demo`: a guided tour on one machine. It starts the real relay
// binary (rhizome-relay, found next to this program, in the build tree or on
// PATH; $RHIZOME_RELAY_BIN overrides) on 127.0.0.1 and three profiles in a
// temporary directory, has them exchange invites and messages (including over
// a relay that is stopped and restarted mid-way), then two more profiles run
// by `rhizome daemon --listen` children that make a --direct invite and keep
// talking over direct links once the relay is gone; prints what each person
// sees, checks that no plaintext reached any file, and removes everything.
#pragma once

namespace rhizome::client {

// Exit code: 0 on success; 1 with "rhizome: error: ..." on stderr otherwise.
int RunDemo();

}  // namespace rhizome::client
