//! Merging the replies of a request's parts back into its reply, as its plan's [`Shape`] says.

use crate::command::{self, MergeError};
use crate::resp::Value;

use super::error::RequestError;
use super::plan::Shape;
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
        Shape::Pipeline => Ok(Reply::Pipeline(results)),
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
