//! Splitting multi-key commands per slot, and merging replies from several slots or nodes.
//!
//! A split keeps the first-appearance order of slots and, within a slot, the order of the keys,
//! so [`reassemble`] can put `MGET` values back exactly where the caller expects them.

use std::collections::BTreeMap;

use bytes::Bytes;
use thiserror::Error;

use super::{CommandError, CommandInfo, KeySpec, ResponsePolicy};
use crate::resp::Value;
use crate::server_error::ServerError;
use crate::slot::{Slot, key_slot};

/// The keys of one slot in a split command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotGroup {
    /// The slot.
    pub slot: Slot,
    /// Argument indexes of the keys in this slot, ascending.
    pub arg_indices: Vec<usize>,
    /// Positions of those keys among all keys of the command (0 for the first key).
    pub positions: Vec<usize>,
}

/// Why replies could not be merged.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MergeError {
    /// Not one reply per group or node.
    #[error("expected {expected} replies, got {got}")]
    ReplyCount {
        /// Replies expected.
        expected: usize,
        /// Replies given.
        got: usize,
    },
    /// A node answered with an error.
    #[error("reply {index} is an error: {error}")]
    Server {
        /// Which reply.
        index: usize,
        /// The error.
        error: ServerError,
    },
    /// A reply does not have the shape the policy needs.
    #[error("reply {index} has an unexpected shape")]
    UnexpectedReply {
        /// Which reply.
        index: usize,
    },
    /// The integer sum overflowed.
    #[error("integer sum overflowed")]
    Overflow,
    /// The policy needs at least one reply.
    #[error("no replies to merge")]
    NoReplies,
}

/// Groups the keys of `args` by slot, slots in order of first appearance. Fails when `info`
/// has no split policy or `args` do not fit it.
pub fn split_by_slot(info: &CommandInfo, args: &[Bytes]) -> Result<Vec<SlotGroup>, CommandError> {
    if info.split_policy().is_none() {
        return Err(CommandError::NotSplittable { name: info.name() });
    }
    let mut groups: Vec<SlotGroup> = Vec::new();
    let mut by_slot: BTreeMap<Slot, usize> = BTreeMap::new();
    for (position, (index, key)) in info.keys(args)?.enumerate() {
        let slot = key_slot(key);
        let g = *by_slot.entry(slot).or_insert_with(|| {
            groups.push(SlotGroup { slot, arg_indices: Vec::new(), positions: Vec::new() });
            groups.len() - 1
        });
        groups[g].arg_indices.push(index);
        groups[g].positions.push(position);
    }
    Ok(groups)
}

/// The command for one group: the name, any arguments before the first key, the group's keys
/// (each with its value for key/value commands), and a trailing argument (`JSON.MGET`'s path).
#[must_use]
pub fn sub_command(info: &CommandInfo, args: &[Bytes], group: &SlotGroup) -> Vec<Bytes> {
    let (lead, per_key, trailing) = match info.key_spec() {
        KeySpec::AllFrom(f) => (usize::from(f), 1, false),
        KeySpec::AllFromButLast(f) => (usize::from(f), 1, true),
        KeySpec::Pairs(f) => (usize::from(f), 2, false),
        KeySpec::Index(i) => (usize::from(i), 1, false),
        _ => (1, 1, false),
    };
    let mut out = Vec::with_capacity(lead + group.arg_indices.len() * per_key + 1);
    out.extend(args.iter().take(lead).cloned());
    for &i in &group.arg_indices {
        out.extend(args.iter().skip(i).take(per_key).cloned());
    }
    if trailing {
        out.extend(args.last().cloned());
    }
    out
}

/// Puts the replies of a split command back together: `replies[i]` answers `groups[i]`.
///
/// `InOrder` places each group's array elements at its keys' positions; every other policy is
/// [`merge`].
pub fn reassemble(
    policy: ResponsePolicy,
    groups: &[SlotGroup],
    replies: Vec<Value>,
) -> Result<Value, MergeError> {
    if replies.len() != groups.len() {
        return Err(MergeError::ReplyCount { expected: groups.len(), got: replies.len() });
    }
    if policy != ResponsePolicy::InOrder {
        return merge(policy, replies);
    }
    let total = groups.iter().map(|g| g.positions.len()).sum();
    let mut out = vec![Value::Nil; total];
    for (index, (group, reply)) in groups.iter().zip(replies).enumerate() {
        let items = match reply {
            Value::Error(raw) => return Err(MergeError::Server { index, error: ServerError::new(raw) }),
            Value::Array(items) if items.len() == group.positions.len() => items,
            _ => return Err(MergeError::UnexpectedReply { index }),
        };
        for (&pos, item) in group.positions.iter().zip(items) {
            let slot = out.get_mut(pos).ok_or(MergeError::UnexpectedReply { index })?;
            *slot = item;
        }
    }
    Ok(Value::Array(out))
}

/// Merges the replies of several nodes (or slots) by `policy`.
///
/// Errors fail the merge, except under `PerNode` (each reply is kept as is) and
/// `FirstNonError` (errors are skipped unless all replies are errors). `InOrder` needs the
/// groups: use [`reassemble`]; here it behaves like `Concatenate`.
pub fn merge(policy: ResponsePolicy, replies: Vec<Value>) -> Result<Value, MergeError> {
    use ResponsePolicy as P;
    match policy {
        P::PerNode => return Ok(Value::Array(replies)),
        P::FirstNonError => {
            let first_error = replies.iter().position(|r| matches!(r, Value::Error(_)));
            return match replies.iter().position(|r| !matches!(r, Value::Error(_))) {
                Some(i) => Ok(replies.into_iter().nth(i).unwrap_or(Value::Nil)),
                None => Err(first_error.map_or(MergeError::NoReplies, |i| server_error(&replies, i))),
            };
        }
        _ => {}
    }
    if let Some(i) = replies.iter().position(|r| matches!(r, Value::Error(_))) {
        return Err(server_error(&replies, i));
    }
    match policy {
        P::SumIntegers => {
            let mut sum: i64 = 0;
            for (index, r) in replies.iter().enumerate() {
                let Value::Int(n) = r else { return Err(MergeError::UnexpectedReply { index }) };
                sum = sum.checked_add(*n).ok_or(MergeError::Overflow)?;
            }
            Ok(Value::Int(sum))
        }
        P::AllOk => {
            for (index, r) in replies.iter().enumerate() {
                if !matches!(r, Value::Simple(s) if &s[..] == b"OK") {
                    return Err(MergeError::UnexpectedReply { index });
                }
            }
            Ok(Value::Simple(Bytes::from_static(b"OK")))
        }
        P::AllSucceeded => replies.into_iter().next().ok_or(MergeError::NoReplies),
        P::LogicalAnd => {
            let mut acc: Option<Vec<i64>> = None;
            for (index, r) in replies.iter().enumerate() {
                let bad = MergeError::UnexpectedReply { index };
                let ints = r
                    .as_array()
                    .ok_or_else(|| bad.clone())?
                    .iter()
                    .map(|v| v.as_int().filter(|n| *n == 0 || *n == 1))
                    .collect::<Option<Vec<i64>>>()
                    .ok_or_else(|| bad.clone())?;
                acc = match acc {
                    None => Some(ints),
                    Some(prev) if prev.len() == ints.len() => {
                        Some(prev.iter().zip(&ints).map(|(a, b)| a & b).collect())
                    }
                    Some(_) => return Err(bad),
                };
            }
            Ok(Value::Array(acc.unwrap_or_default().into_iter().map(Value::Int).collect()))
        }
        _ => {
            let mut out = Vec::new();
            for (index, r) in replies.into_iter().enumerate() {
                match r {
                    Value::Array(items) | Value::Set(items) => out.extend(items),
                    _ => return Err(MergeError::UnexpectedReply { index }),
                }
            }
            Ok(Value::Array(out))
        }
    }
}

fn server_error(replies: &[Value], index: usize) -> MergeError {
    match replies.get(index) {
        Some(Value::Error(raw)) => MergeError::Server { index, error: ServerError::new(raw.clone()) },
        _ => MergeError::UnexpectedReply { index },
    }
}
