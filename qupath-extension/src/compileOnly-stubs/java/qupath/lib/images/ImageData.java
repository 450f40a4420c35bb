package qupath.lib.images;

import qupath.lib.images.servers.ImageServer;
import qupath.lib.objects.hierarchy.PathObjectHierarchy;
import qupath.lib.plugins.workflow.Workflow;

/** Stand-in: qupath-core ImageData (AutoCloseable only from 0.6, so the glue closes the server instead). */
public class ImageData<T> {
    public PathObjectHierarchy getHierarchy() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public Workflow getHistoryWorkflow() { throw new UnsupportedOperationException("compile-only stand-in"); }
    public ImageServer<T> getServer() { throw new UnsupportedOperationException("compile-only stand-in"); }
}
