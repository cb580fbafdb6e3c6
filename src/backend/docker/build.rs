//! Building a revision's image with the engine's build API from the
//! Dockerfile at the top of its fetched source, with the output in the
//! revision's build log.
//!
//! The image is tagged per revision and its id is recorded beside the
//! tree, so that a rollback to the revision runs that exact image and never
//! builds again.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use bollard::errors::Error as EngineError;
use bollard::query_parameters::BuildImageOptions;
use bollard::Docker;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::spec::{image_tag, LABEL_DEPLOYMENT_ID, LABEL_HOME, LABEL_REVISION};
use super::DockerError;
use crate::backend::ImageBuild;
use crate::logs::Stream;

/// Lines of build output kept for the message of a failed build.
const TAIL_LINES: usize = 10;

/// The file the engine builds from, at the top of the source.
const DOCKERFILE: &str = "Dockerfile";

/// Returns the id of the revision's image: the one recorded for the tree if
/// there is one (it must still exist), else one built now.
pub(super) async fn build(
    docker: &Docker,
    request: &ImageBuild,
    home: &str,
) -> Result<String, DockerError> {
    if let Some(image) = request.dirs.image_id() {
        return reuse(docker, &image, request.revision).await;
    }
    let tree = request.dirs.tree();
    if !tree.join(DOCKERFILE).is_file() {
        return Err(DockerError::MissingDockerfile {
            revision: request.revision,
            path: tree.join(DOCKERFILE),
        });
    }
    let context = pack(&tree).await?;
    let tag = image_tag(&request.key, request.revision);
    let note = format!(
        "building image {tag} from {}\n",
        tree.join(DOCKERFILE).display()
    );
    request.log.write(Stream::Stdout, note.as_bytes()).await;

    let options = BuildImageOptions {
        t: Some(tag.clone()),
        rm: true,
        forcerm: true,
        labels: Some(HashMap::from([
            (LABEL_HOME.to_owned(), home.to_owned()),
            (
                LABEL_DEPLOYMENT_ID.to_owned(),
                request.deployment_id.clone(),
            ),
            (LABEL_REVISION.to_owned(), request.revision.to_string()),
        ])),
        ..Default::default()
    };
    stream_output(docker, options, context, request).await?;

    let image = docker
        .inspect_image(&tag)
        .await
        .map_err(|source| super::request_error("inspect image", &tag, source))?
        .id
        .ok_or_else(|| DockerError::Build {
            revision: request.revision,
            message: format!("the engine reports no id for {tag}"),
            tail: Vec::new(),
        })?;
    let note = format!("built image {image} as {tag}\n");
    request.log.write(Stream::Stdout, note.as_bytes()).await;
    request
        .dirs
        .set_image_id(&image)
        .map_err(|error| DockerError::Build {
            revision: request.revision,
            message: error.to_string(),
            tail: Vec::new(),
        })?;
    Ok(image)
}

/// Checks that an image built before still exists: a rollback runs it
/// rather than building again from a source that may have changed.
async fn reuse(docker: &Docker, image: &str, revision: u64) -> Result<String, DockerError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(image.to_owned()),
        Err(EngineError::DockerResponseServerError {
            status_code: 404, ..
        }) => Err(DockerError::BuiltImageGone {
            image: image.to_owned(),
            revision,
        }),
        Err(source) => Err(super::request_error("inspect image", image, source)),
    }
}

/// Sends the build and copies its output into the build log, keeping the
/// last lines for the error of a failed build.
async fn stream_output(
    docker: &Docker,
    options: BuildImageOptions,
    context: Bytes,
    request: &ImageBuild,
) -> Result<(), DockerError> {
    let (mut pipe, capture) = request.log.pipe(Stream::Stdout);
    let mut tail = Tail::default();
    let mut failure = None;
    let mut output = docker.build_image(options, None, Some(bollard::body_full(context)));
    while let Some(item) = output.next().await {
        match item {
            Ok(info) => {
                let text = info.stream.or(info.status).unwrap_or_default();
                tail.push(&text);
                if let Err(error) = pipe.write_all(text.as_bytes()).await {
                    tracing::debug!(%error, "the build log capture ended");
                }
            }
            Err(EngineError::DockerStreamError { error }) => {
                failure = Some(error);
                break;
            }
            Err(error) => {
                failure = Some(error.to_string());
                break;
            }
        }
    }
    drop(pipe);
    // The whole output is in the log before the result is reported, so the
    // build log that a failure points to contains its last lines.
    let _ = capture.await;
    match failure {
        None => Ok(()),
        Some(message) => {
            let message = message.trim().to_owned();
            request
                .log
                .write(Stream::Stderr, format!("{message}\n").as_bytes())
                .await;
            Err(DockerError::Build {
                revision: request.revision,
                message,
                tail: tail.lines.into(),
            })
        }
    }
}

/// Packs the tree into the tar archive that the build API takes as its
/// context.
// NOTE: the archive is held in memory while it is sent, so a source of
// several GiB needs that much memory in the agent.
async fn pack(tree: &Path) -> Result<Bytes, DockerError> {
    let root = tree.to_path_buf();
    let packed = tokio::task::spawn_blocking(move || {
        let mut archive = tar::Builder::new(Vec::new());
        archive.follow_symlinks(false);
        archive.append_dir_all(".", &root)?;
        archive.into_inner()
    })
    .await;
    match packed {
        Ok(Ok(bytes)) => Ok(Bytes::from(bytes)),
        Ok(Err(source)) => Err(DockerError::Context {
            path: tree.to_path_buf(),
            source,
        }),
        Err(join) => Err(DockerError::Context {
            path: tree.to_path_buf(),
            source: std::io::Error::other(join.to_string()),
        }),
    }
}

/// The last non-empty lines of the build output.
#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    fn push(&mut self, text: &str) {
        for line in text
            .lines()
            .map(str::trim_end)
            .filter(|line| !line.is_empty())
        {
            if self.lines.len() == TAIL_LINES {
                self.lines.pop_front();
            }
            self.lines.push_back(line.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        let mut tail = Tail::default();
        for step in 0..15 {
            tail.push(&format!("Step {step}\n\n"));
        }

        assert_eq!(tail.lines.len(), TAIL_LINES);
        assert_eq!(tail.lines.front().map(String::as_str), Some("Step 5"));
        assert_eq!(tail.lines.back().map(String::as_str), Some("Step 14"));
    }
}
