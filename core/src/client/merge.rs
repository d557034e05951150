//! Merging the replies of a request's parts back into its reply, as its plan's [`Shape`] says.

use crate::command::{self, MergeError};
use crate::resp::Value;

use super::error::RequestError;
use super::plan::{Part, Shape};
use super::request::Reply;

fn merge_error(e: MergeError) -> RequestError {
    match e {
        MergeError::Server { error, .. } => RequestError::Server(error),
        e => RequestError::UnexpectedReply { expected: "replies that merge", got: e.to_string() },
    }
}

/// Builds a request's reply from its sub-results (all present).
pub(crate) fn finish(shape: Shape, results: Vec<Result<Value, RequestError>>) -> Result<Reply, RequestError> {
    match shape {
        Shape::Single => results
            .into_iter()
            .next()
            .unwrap_or(Err(RequestError::Internal { what: "a one-command request had no result" }))
            .map(Reply::Value),
        Shape::Pipeline(parts) => Ok(Reply::Pipeline(pipeline(&parts, results))),
        Shape::PerNode(addrs) => Ok(Reply::PerNode(addrs.into_iter().zip(results).collect())),
        Shape::Fanout(policy, _) => {
            let values = results.into_iter().collect::<Result<Vec<_>, _>>()?;
            command::merge(policy, values).map(Reply::Value).map_err(merge_error)
        }
        Shape::Split { policy, groups } => {
            let values = results.into_iter().collect::<Result<Vec<_>, _>>()?;
            command::reassemble(policy, &groups, values).map(Reply::Value).map_err(merge_error)
        }
    }
}

/// One result per pipeline command: split commands' sub-results merged back (the first error
/// wins), and [`RequestError::Skipped`] indexes turned back into pipeline positions.
fn pipeline(parts: &[Part], results: Vec<Result<Value, RequestError>>) -> Vec<Result<Value, RequestError>> {
    let mut entry_of = Vec::with_capacity(results.len());
    for (i, p) in parts.iter().enumerate() {
        entry_of.extend(core::iter::repeat_n(i, p.len()));
    }
    let mut results = results.into_iter().map(|r| match r {
        Err(RequestError::Skipped { index }) => {
            Err(RequestError::Skipped { index: entry_of.get(index).copied().unwrap_or(index) })
        }
        r => r,
    });
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let result = match part {
            Part::One => results
                .next()
                .unwrap_or(Err(RequestError::Internal { what: "a pipeline command had no result" })),
            Part::Split { policy, groups } => {
                // All of this part's sub-results are taken before looking for an error.
                let taken: Vec<_> = results.by_ref().take(groups.len()).collect();
                let values: Result<Vec<Value>, RequestError> = taken.into_iter().collect();
                values.and_then(|v| command::reassemble(*policy, groups, v).map_err(merge_error))
            }
        };
        out.push(result);
    }
    out
}
