// Package syncengine is the heart of Tessera: survey records that many
// replicas (field devices, camp-office hubs, the central server) edit offline
// and merge deterministically, field by field.
//
// Every field of a record is a multi-value register. A write carries a dot
// (the writer's replica id and counter) and the writer's causal context: the
// dots of every write to the record it had seen. Applying a write removes the
// values it had seen and keeps the values it had not, so two writes that did
// not see each other are both kept as a conflict until someone resolves it
// with an ordinary write that has seen them both. Different fields never
// conflict. The merge (Record.Apply) is pure: no clock, disk or network.
//
// Around the merge, Replica adds what a running replica needs: a Store (one
// transaction moves record state, the local change log and cursors together),
// counters and a hybrid logical clock persisted with every write, and the two
// halves of the sync protocol (Sync on the client side, Receive and Page on
// the server side) over an abstract Remote. Protobuf and Connect live outside
// this package.
package syncengine
