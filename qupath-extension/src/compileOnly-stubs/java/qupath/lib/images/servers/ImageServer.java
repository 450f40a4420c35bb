package qupath.lib.images.servers;

import java.io.IOException;
import java.net.URI;
import java.util.Collection;
import qupath.lib.regions.RegionRequest;

/** Stand-in: qupath-core ImageServer. */
public interface ImageServer<T> extends AutoCloseable {
    String getPath();
    Collection<URI> getURIs();
    int getWidth();
    int getHeight();
    T readRegion(RegionRequest request) throws IOException;
}
