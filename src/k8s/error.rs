//! The one error type of the Kubernetes module: construct misuse and rendering failures.

/// What went wrong while building or rendering Kubernetes objects.
///
/// Messages are lowercase and say what was found and what was expected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum K8sError {
    /// A name (object name, container port name, ...) is empty or not valid Kubernetes syntax.
    #[error("{what}: found `{value}`, expected {expected}")]
    InvalidName {
        /// Which name, e.g. `service name`.
        what: String,
        /// The offending value.
        value: String,
        /// The rule it breaks, e.g. `a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)`.
        expected: String,
    },
    /// A label value is longer than 63 characters or uses characters Kubernetes rejects.
    #[error(
        "label {key}: found value `{value}`, expected at most 63 characters of [A-Za-z0-9-_.] starting and ending with an alphanumeric"
    )]
    InvalidLabelValue {
        /// The label key.
        key: String,
        /// The offending value.
        value: String,
    },
    /// A label or annotation key is not a valid qualified name.
    #[error(
        "label or annotation key: found `{key}`, expected an optional DNS prefix and '/', then at most 63 characters of [A-Za-z0-9-_.]"
    )]
    InvalidKey {
        /// The offending key.
        key: String,
    },
    /// A construct property holds a value outside what the construct accepts.
    #[error("{field}: found {found}, expected {expected}")]
    InvalidProps {
        /// The property, e.g. `autoscaling.min_replicas`.
        field: String,
        /// What was given.
        found: String,
        /// What is accepted.
        expected: String,
    },
    /// An image is pinned by tag where a digest is required (e.g. in prod).
    #[error(
        "image {image}: found a tag, expected a digest (`repo@sha256:<64 hex>`) because this environment requires digests"
    )]
    DigestRequired {
        /// The image reference as written.
        image: String,
    },
    /// A value could not be converted to JSON or YAML.
    #[error("serializing {what}: {message}")]
    Serialize {
        /// What was being serialized, e.g. `Deployment/analytics-api`.
        what: String,
        /// The serializer's message.
        message: String,
    },
    /// Two objects would be written to the same file.
    #[error("two objects render to {file}: found a duplicate kind/name, expected each object once")]
    DuplicateObject {
        /// The file name both would get.
        file: String,
    },
}
